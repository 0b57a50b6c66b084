"""Protocol adapters: the ways messages enter and leave the platform."""
