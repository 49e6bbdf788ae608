"""The event contract: pydantic models and the JSON Schemas exported from them."""
