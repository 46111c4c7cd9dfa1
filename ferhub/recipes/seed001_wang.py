"""Seed 001 — Wang & Mbutia, "FaceNet: Facial Expression Recognition based on Deep Convolutional Neural
Networks" (Stanford CS231n report).

ImageNet networks fine-tuned with (or without) the class-weighted cross-entropy of eq. 1 (weights from the
training-set class frequencies), random flipping, cropping, scaling and brightness changes; 8 classes
including contempt; the measures are test accuracy and mean per-class recall on "10% of the original dataset"
(ferhub holds out a stratified 10% that reports, and chooses the epoch on an inner 10% of the rest). The
optimizer, batch size and number of epochs are not given; Adam, 32 and 30 epochs (early stopping on validation
recall) are used.

Variants: one per row of Table 1 ("Training Results"), named network_loss_lr<learning rate>, and the NASNet
without class weighting that the table lacks (an ablation, no published number).

Names that differ from the paper, and why (parameter counts with the paper's 8-way heads, counted from the
built models):
- "MobileNet": the paper's citation is MobileNet V1 (Howard et al. 2017, "four million parameters");
  torchvision has no V1, so ferhub trains MobileNet V2 (2.2M parameters; 3.5M with ImageNet's 1000-way
  classifier), whose ImageNet weights import offline. V3 is ``--set model=mobilenet_v3_large``.
- "NASNet": the paper says NASNet has "roughly the same number of parameters" as Inception V3 (21.8M here; 25M
  in the paper's count). No NASNet does: NASNet-A Mobile has 5.3M, NASNet-A Large 84.8M (88.8M with its
  ImageNet classifier). ferhub uses NASNet-A Large (timm), the NASNet with published PyTorch ImageNet weights.
"""

CITATION = (
    "Wang, J., Mbutia, M. FaceNet: Facial Expression Recognition based on Deep Convolutional Neural Networks."
    " Stanford University, CS231n course project report."
)

RECIPE = {
    "description": (
        "ImageNet Inception V3, class-weighted CE, lr 1.7e-5 (Table 1's best: 74.04% test accuracy, "
        "71.74% recall)."
    ),
    "model": "inception_v3",
    "model_args": {"pretrained": True},
    "tiny_model": "test_mobilenet",  # no tiny Inception is registered; same transfer path
    "epochs": 30,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1.7e-5,
    "schedule": "constant",
    "loss": "weighted_ce",
    "augment": {"hflip": 0.5, "scale": [0.9, 1.1], "translate": 0.1, "brightness": 0.25},
    "early_stopping": 8,
    "val_fraction": 0.1,
    "citation": CITATION,
}

_NETWORKS = {
    "inception_v3": ("Inception V3", {"model": "inception_v3", "tiny_model": "test_mobilenet"}),
    "mobilenet": ("MobileNet (V2)", {"model": "mobilenet_v2", "tiny_model": "test_mobilenet"}),
    "nasnet": ("NASNet (-A Large)", {"model": "nasnet_a_large", "tiny_model": "test_nasnet"}),
}
# Table 1, row by row: network, weighted loss, learning rate, train / test accuracy, recall (%)
TABLE_1 = [
    ("inception_v3", False, "2.2e-5", "80.91", "73.02", "71.42"),
    ("inception_v3", False, "4.9e-5", "77.64", "72.41", "70.09"),
    ("inception_v3", True, "1.7e-5", "82.94", "74.04", "71.74"),
    ("inception_v3", True, "2.5e-5", "75.92", "68.82", "70.13"),
    ("mobilenet", False, "7.1e-4", "79.13", "71.33", "61.23"),
    ("mobilenet", False, "9.7e-4", "73.29", "64.81", "59.12"),
    ("mobilenet", True, "4.1e-4", "80.18", "60.91", "64.34"),
    ("mobilenet", True, "3.0e-4", "73.29", "53.23", "47.76"),
    ("nasnet", True, "8.1e-5", "73.30", "51.59", "60.99"),
    ("nasnet", True, "5.5e-5", "74.90", "50.57", "46.27"),
]


def _variant(net: str, weighted: bool, lr: str, result: str) -> tuple[str, dict]:
    title, settings = _NETWORKS[net]
    loss = "weighted" if weighted else "unweighted"
    name = f"{net}_{loss}_lr{lr}"
    what = "class-weighted CE (eq. 1)" if weighted else "plain CE"
    return name, {
        "description": f"{title}, {what}, lr {lr} ({result}).",
        **settings,
        "lr": float(lr),
        "loss": "weighted_ce" if weighted else "ce",
    }


VARIANTS = dict(
    _variant(net, weighted, lr, f"Table 1: train {tr}%, test {te}%, recall {rc}%")
    for net, weighted, lr, tr, te, rc in TABLE_1
)
VARIANTS.update(
    [_variant("nasnet", False, "8.1e-5", "ablation: the table has no unweighted NASNet; no published number")]
)
