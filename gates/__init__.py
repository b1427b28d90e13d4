"""Treasure's operator gates: one test module per gate, each marked ``@pytest.mark.gate(name)``.

A package so that gate modules never clash with same-named test modules elsewhere (tests/).
"""
