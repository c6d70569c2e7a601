"""Vision tools on a hit: zero-shot labels, language-driven masks, open-vocabulary boxes.

Kept import-free so the CLI can list the choices below without loading torch.
"""

#: Last-block attention for masks: ClearCLIP's q·qᵀ, NACLIP's k·kᵀ + neighbourhood, or the plain block.
METHODS = ("clearclip", "naclip", "vanilla")
#: "ensemble": the CLIP paper's 80 ImageNet templates; "compact": the 7 of them the CLIP authors
#: picked to match the full ensemble at a tenth of the text-encoding cost; "single": one template.
TEMPLATE_SETS = ("ensemble", "compact", "single")
