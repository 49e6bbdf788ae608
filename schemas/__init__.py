"""The event contract, the bottom layer: pydantic models, the JSON Schemas exported from
them, the largest event and the partitioner. It imports nothing of the product."""
