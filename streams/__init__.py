"""The stream processor: Faust app, topics, agents and per-manager state."""
