"""adapters store package."""
