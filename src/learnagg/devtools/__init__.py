"""devtools package."""
