"""Company configurations shipped with salespulse (the demo floor)."""

from pathlib import Path

DEMO_CONFIG = Path(__file__).parent / "demo.toml"
