"""pytest-treasure: Treasure's operator gates as pytest markers, fixtures and hypothesis strategies."""
