"""Seed 002 — Kaskun, Shuvar & Prodyvus, "Face emotion recognition with convolutional neural network".

Two fully-convolutional nets trained on FER2013 (48x48 gray) with Adam: the 9-conv network with global average
pooling (~600k parameters) and mini-Xception (4 residual depthwise-separable blocks, ~60k parameters, 66%).
The paper gives no schedule; its mini-Xception is Arriaga et al.'s, whose published training script uses
batch 32, Adam (lr 1e-3), reduce-on-plateau (factor 0.1, patience 12), early stopping (patience 50), and
rotation ±10°, shifts and zoom of 10%, horizontal flips. Those are used here, with 200 epochs at most.
"""

CITATION = (
    "Kaskun, O., Shuvar, R., Prodyvus, A. Face emotion recognition with convolutional neural network. Ivan Franko "
    "National University of Lviv. Mini-Xception: Arriaga, O., Valdenegro-Toro, M., Plöger, P. (2017). Real-time "
    "Convolutional Neural Networks for Emotion and Gender Classification. arXiv:1710.07557"
)

RECIPE = {
    "description": "mini-Xception on 48x48 gray faces, Adam with reduce-on-plateau and early stopping "
    "(Kaskun et al.; Arriaga et al.'s training settings).",
    "model": "mini_xception",
    "tiny_model": "test_tiny",
    "config_overrides": {"input_size": 48},
    "epochs": 200,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1e-3,
    "schedule": "plateau",
    "gamma": 0.1,
    "plateau_patience": 12,
    "early_stopping": 50,
    "augment": {"hflip": 0.5, "rotate": 10, "scale": [0.9, 1.1], "translate": 0.1},
    "citation": CITATION,
}

VARIANTS = {
    "mini_xception": {},
    "fcn": {"model": "fcn", "tiny_model": "test_fcn", "model_args": {"drop_rate": 0.5}},
}
