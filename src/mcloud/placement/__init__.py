"""The placement service (Placement 1.x microversions), mounted at /placement."""
