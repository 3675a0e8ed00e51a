"""Pydantic models that mirror the API contracts in ../shared/spec, field for field."""
