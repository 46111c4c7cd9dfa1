"""Seed 003 — Xiang, "Multiscale Very Deep Convolutional Network for Facial Expression in the Wild".

MTCNN crops (the whole image when no face is found) at 350x350 -> facenet-pytorch's InceptionResnetV1
(VGGFace2 weights), either frozen under the multi-scale head of Fig. 2 ("My Proposed Model"; at 350 px the
head sees maps of 9, 9, 5 and 3 px) or fine-tuned whole with a new classifier (the baseline), with or without
output mix-up with the neutral score (eq. 3, learnable λ initialised to 0.2) and label smoothing ε = 0.3 (eq.
2); focal loss with equal class weights (Sec. 2.6; γ = 2, Lin et al.'s, as the paper gives none).

Augmentation (Sec. 2.4): flip p=0.5; rotation by up to 15° with p=0.5; per-channel histogram equalisation
p=0.5; "randomly crop and resize the image to 350-by-350" — torchvision's ``RandomResizedCrop(350)``
(area 8-100%, aspect 3/4-4/3), the name of that operation in the PyTorch the paper used; cutout of 8 holes of
at most 6x6 px with p=0.5; normalisation.

Protocol (Sec. 2.6): stratified 2-fold — train on one set, test on the other and back — "the average
validation accuracy on the two sets", each configuration run 3 times and averaged: ``kfold=2, repeats=3``,
mean ± std in the card. No epoch is chosen on the test folds (``selection="last"``): the learning rate
"decreases by 0.25 of the origin every fixed number of epochs" (lr × 1, 0.75, 0.5, 0.25 every 8 epochs over
30); Adam with "a very small learning rate" (1e-4), batch 32. The paper tunes lr and batch size per
configuration without stating them.

Variants: the five rows of Table 1 that are the paper's own. The best, 54.32%, is the multi-scale model with
output mix-up and *without* label smoothing, so that is the default; label smoothing "failed in my proposed
model" (51.48%).
"""

CITATION = (
    "Xiang, X. Multiscale Very Deep Convolutional Network for Facial Expression in the Wild. Research School"
    " of Computer Science, Australian National University."
)

MULTISCALE = {
    "model": "irv1_multiscale",
    "model_args": {"pretrained": True, "trainable_stages": 0, "output_mixup": True},
    "tiny_model": "test_irv1",
}
FINE_TUNED = {"model": "irv1_classifier", "tiny_model": "test_irv1_classifier"}
FOCAL = {"loss": "focal", "loss_args": {"gamma": 2.0, "label_smoothing": 0.0}}
FOCAL_LS = {"loss": "focal", "loss_args": {"gamma": 2.0, "label_smoothing": 0.3}}

RECIPE = {
    "description": (
        "Frozen InceptionResnetV1 (VGGFace2) + multi-scale head + output mix-up, focal loss, 350 px, "
        "stratified 2-fold x 3 runs (Xiang, Table 1's best: 54.32%)."
    ),
    **MULTISCALE,
    **FOCAL,
    "config_overrides": {"input_size": 350},
    "epochs": 30,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1e-4,
    "schedule": "step_linear",
    "step_epochs": 8,
    "gamma": 0.25,
    "augment": {
        "hflip": 0.5,
        "rotate": 15,
        "rotate_p": 0.5,
        "hist_eq": 0.5,
        "resized_crop": [0.08, 1.0],
        "resized_crop_ratio": [3 / 4, 4 / 3],
        "cutout": 0.5,
        "cutout_holes": 8,
        "cutout_size": 6 / 350,
    },
    "kfold": 2,
    "selection": "last",
    "repeats": 3,
    "no_face": "fallback",
    "citation": CITATION,
}

VARIANTS = {
    "irv1_finetuned": {
        "description": (
            "MTCNN + Inception Resnet v1 (fine-tuned): the whole net, a new classifier (Table 1: 51.3)."
        ),
        **FINE_TUNED,
        "model_args": {"pretrained": True, "trainable_stages": 3, "output_mixup": False},
        **FOCAL,
    },
    "irv1_mixup": {
        "description": "MTCNN + Inception Resnet v1 + Output mix-up (Table 1: 53.65).",
        **FINE_TUNED,
        "model_args": {"pretrained": True, "trainable_stages": 3, "output_mixup": True},
        **FOCAL,
    },
    "irv1_mixup_ls": {
        "description": "MTCNN + Inception Resnet v1 + Output mix-up + Label Smoothing 0.3 (Table 1: 54.19).",
        **FINE_TUNED,
        "model_args": {"pretrained": True, "trainable_stages": 3, "output_mixup": True},
        **FOCAL_LS,
    },
    "multiscale_mixup": {
        "description": "My Proposed Model + Output mix-up: frozen IRV1 + multi-scale head (Table 1: 54.32).",
        **MULTISCALE,
        **FOCAL,
    },
    "multiscale_mixup_ls": {
        "description": "My Proposed Model + Output mix-up + Label Smoothing 0.3 (Table 1: 51.48).",
        **MULTISCALE,
        **FOCAL_LS,
    },
}
