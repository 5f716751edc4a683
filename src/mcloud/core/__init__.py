"""Building blocks every service shares. Core knows no service."""
