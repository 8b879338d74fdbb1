"""DecodingTrust's eight trust perspectives + MMLU, as the Decoding Compressed Trust paper scored them.

One module per perspective (`toxicity`, `stereotype`, `advglue`, `ood`, `adv_demo`, `privacy`, `ethics`, `fairness`)
plus `mmlu`; `templates` (conversation templates and their quirks), `engine` (batched generation + cache),
`toxicity_scorers`, `evaluate` (one model, all perspectives) and `report` (the paper's table and figures).
"""
