"""Seed 004 — Chen, "Exploring factors affecting facial expression classification performance with transferred
deep neural network".

MTCNN face crops (the whole image resized when no face is found, counted), ImageNet ResNet18 with only its last
n blocks trainable (n = 2 was best: 43.24% validation on SFEW; n = 1, 3 are variants), cross-entropy, Adam,
5-fold cross-validation, 20 epochs, 160x160 input. The learning rate and batch size for the ResNet are not
given; Adam 1e-4 and 32 are used.
"""

CITATION = (
    "Chen, C. Exploring factors affecting facial expression classification performance with transferred deep "
    "neural network. The Australian National University."
)

RECIPE = {
    "description": "ImageNet ResNet18 with its last 2 blocks (layer4 + FC) trainable, Adam, 5-fold (Chen).",
    "model": "resnet18",
    # Chen counts the classifier as a block: his n=1 is the FC layer alone, n=2 is layer4 + FC, n=3 adds layer3
    # ("three blocks involve 8 convolutional layers as well as the last fully connected layer"). ferhub's
    # trainable_stages counts residual stages only (the head always trains), so Chen's n = trainable_stages + 1.
    "model_args": {"pretrained": True, "trainable_stages": 1},
    "tiny_model": "test_resnet",
    "config_overrides": {"input_size": 160},
    "epochs": 20,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1e-4,
    "schedule": "constant",
    "loss": "ce",
    "kfold": 5,
    "no_face": "fallback",
    "citation": CITATION,
}

VARIANTS = {f"last{n}": {"model_args": {"pretrained": True, "trainable_stages": n - 1}} for n in (1, 2, 3)}
