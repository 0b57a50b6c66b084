"""Examples of programs built on Shopfloor."""
