"""Seed 003 — Xiang, "Multiscale Very Deep Convolutional Network for Facial Expression in the Wild".

MTCNN crops -> facenet-pytorch InceptionResnetV1 (VGGFace2 weights) frozen, the multi-scale head of Fig. 2 and
output mix-up with the neutral score (eq. 3, learnable λ initialised to 0.2); focal loss with equal class
weights (Sec. 2.6: equal weights worked best) and label smoothing ε = 0.3 (eq. 2); augmentation of Sec. 2.4:
flip p=0.5, rotation 15° p=0.5, per-channel histogram equalisation p=0.5, random crop-and-resize, cutout of 8
holes of at most 6x6 px (on 350 px) p=0.5; stratified 2-fold cross-validation; Adam with "a very small learning
rate" decreased every fixed number of epochs. The paper tunes lr and batch size without stating them: Adam
1e-4, batch 32, step decay x0.25 every 10 epochs over 30 are used. Note: the paper's best score (54.32% on
SFEW) is the multi-scale model with output mix-up *without* label smoothing — the ``no_smoothing`` variant.
"""

CITATION = (
    "Xiang, X. Multiscale Very Deep Convolutional Network for Facial Expression in the Wild. Research School of "
    "Computer Science, Australian National University."
)

RECIPE = {
    "description": "Frozen InceptionResnetV1 (VGGFace2) + multi-scale head + output mix-up, focal loss with "
    "label smoothing 0.3, stratified 2-fold (Xiang).",
    "model": "irv1_multiscale",
    "model_args": {"pretrained": True, "trainable_stages": 0, "output_mixup": True},
    "tiny_model": "test_irv1",
    "epochs": 30,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1e-4,
    "schedule": "step",
    "step_epochs": 10,
    "gamma": 0.25,
    "loss": "focal",
    "loss_args": {"gamma": 2.0, "label_smoothing": 0.3},
    "augment": {
        "hflip": 0.5,
        "rotate": 15,
        "rotate_p": 0.5,
        "hist_eq": 0.5,
        "scale": [1.0, 1.15],
        "translate": 0.07,
        "cutout": 0.5,
        "cutout_holes": 8,
        "cutout_size": 6 / 350,
    },
    "kfold": 2,
    "citation": CITATION,
}

VARIANTS = {
    "default": {},
    "no_smoothing": {"loss_args": {"gamma": 2.0, "label_smoothing": 0.0}},
}
