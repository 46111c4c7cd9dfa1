"""Seed 002 — Kaskun, Shuvar & Prodyvus, "Face emotion recognition with convolutional neural network".

Two fully-convolutional nets trained on FER2013 with Adam: the sequential net of "9 convolution layers, ReLUs,
Batch Normalization, and Global Average Pooling ... About 600,000 parameters" (66%), and mini-Xception, "4
residual depth-wise separable convolutions ... approximately 60,000 parameters" (66%). Both are Arriaga et
al.'s (``simple_CNN`` and ``mini_XCEPTION``); the paper gives no training settings, so the reference training
script's are used:

- 64x64 gray input, batch 32, Adam (lr 1e-3), rotation ±10°, shifts and zoom of 10%, horizontal flips (Keras
  draws the x and y zoom independently; ferhub's zoom is one factor);
- ``ReduceLROnPlateau('val_loss', factor=0.1, patience=12)`` and ``EarlyStopping('val_loss', patience=50)``,
  the checkpoint kept on the best ``val_loss``: ferhub monitors the validation loss (its NLL plus the
  regularisation, as Keras' ``val_loss``) with Keras' patience rule (the rate is cut when 12 flat epochs are
  reached, not exceeded); 200 epochs at most (the script says 10,000 and relies on early stopping);
- mini-Xception's ``kernel_regularizer=l2(0.01)``: 0.01 × Σw² of the kernels only (no bias, no BatchNorm,
  not weight decay on everything). The script passes it to the two plain 3x3 convolutions and to the separable
  ones, but Keras' ``SeparableConv2D`` ignores ``kernel_regularizer`` (it has
  depthwise_/pointwise_regularizer; tensorflow/tensorflow#41093), so the penalty the reference trained with is
  on the two stem kernels only — ferhub's ``stem.0`` and ``stem.3``. ``simple_CNN`` has no regulariser;
- Keras' defaults, which the script keeps: Glorot-uniform kernels, zero biases, BatchNorm momentum 0.99
  (torch's 0.01; ``ferhub.models.mini_xception.keras_defaults``, applied by both nets);
- a validation share of 20% (the script's ``validation_split``) when the data has no validation split; with
  ``fer2013.csv`` PublicTest chooses the epoch and PrivateTest reports.

Counts: ferhub's FCN has ten convolutions, the paper's nine plus the class-map convolution of the reference
code that global average pooling reads, and 641,463 parameters (Keras: 642,935 with BatchNorm's statistics;
the paper's "about 600,000"). mini-Xception has 56,951 (Keras: 58,423; the paper's "approximately 60,000").
"""

CITATION = (
    "Kaskun, O., Shuvar, R., Prodyvus, A. Face emotion recognition with convolutional neural network. Ivan"
    " Franko National University of Lviv. Mini-Xception: Arriaga, O., Valdenegro-Toro, M., Plöger, P. (2017)."
    " Real-time Convolutional Neural Networks for Emotion and Gender Classification. arXiv:1710.07557"
)

RECIPE = {
    "description": (
        "mini-Xception on 64x64 gray faces, Adam, l2(0.01) stem kernels, plateau and early stopping "
        "on validation loss (Kaskun et al.: 66%; Arriaga et al.'s training settings)."
    ),
    "model": "mini_xception",
    "tiny_model": "test_tiny",
    "config_overrides": {"input_size": 64},
    "epochs": 200,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1e-3,
    "schedule": "plateau",
    "gamma": 0.1,
    "plateau_patience": 12,
    "plateau_rule": "keras",
    "early_stopping": 50,
    "monitor": "loss",
    "kernel_l2": 0.01,
    "kernel_l2_layers": ["stem.0", "stem.3"],
    "val_fraction": 0.2,
    "augment": {"hflip": 0.5, "rotate": 10, "scale": [0.9, 1.1], "translate": 0.1},
    "citation": CITATION,
}

VARIANTS = {
    "mini_xception": {
        "description": (
            "mini-Xception, 4 residual depthwise-separable blocks, 56,951 parameters (paper: 66%)."
        ),
    },
    "fcn": {
        "description": (
            "The fully-convolutional net: 9 feature convs + class-map conv, GAP, 641k parameters "
            "(paper: 66%)."
        ),
        "model": "fcn",
        "tiny_model": "test_fcn",
        "model_args": {"drop_rate": 0.5},
        "kernel_l2": 0.0,
        "kernel_l2_layers": [],
    },
}
