"""adapters bus package."""
