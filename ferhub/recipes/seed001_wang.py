"""Seed 001 — Wang & Mbutia, "FaceNet: Facial Expression Recognition based on Deep Convolutional Neural
Networks" (Stanford CS231n report).

ImageNet Inception V3 fine-tuned with a class-weighted cross-entropy (eq. 1, weights from the training-set class
frequencies), random flipping, cropping, scaling and brightness changes; 8 classes including contempt; the
measure is mean per-class recall. Learning rates are Table 1's best with weighted loss: Inception V3 1.7e-5
(74.04% test accuracy, 71.74% recall), MobileNet 4.1e-4. The optimizer, batch size and number of epochs are
not given; Adam, 32 and 30 epochs (with early stopping on validation recall) are used. Variants: MobileNet V2 /
V3 (4.1e-4) and NASNet-A Large through timm (8.1e-5, Table 1's best NASNet learning rate with weighted loss).
"""

CITATION = (
    "Wang, J., Mbutia, M. FaceNet: Facial Expression Recognition based on Deep Convolutional Neural Networks. "
    "Stanford University, CS231n course project report."
)

RECIPE = {
    "description": "ImageNet Inception V3 fine-tuned with class-weighted cross-entropy and flip/crop/scale/"
    "brightness augmentation (Wang & Mbutia).",
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
    "citation": CITATION,
}

VARIANTS = {
    "inception_v3": {},
    "mobilenet_v2": {"model": "mobilenet_v2", "lr": 4.1e-4},
    "mobilenet_v3": {"model": "mobilenet_v3_large", "lr": 4.1e-4},
    "nasnet": {"model": "nasnet_a_large", "tiny_model": "test_nasnet", "lr": 8.1e-5},
}
