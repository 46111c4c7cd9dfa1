"""Seed 004 — Chen, "Exploring factors affecting facial expression classification performance with transferred
deep neural network".

MTCNN face crops (the whole image resized when no face is found, counted), ImageNet ResNet18 with only its
last n blocks trainable, cross-entropy, Adam, "random sampling for evenly distributed labels" (class-balanced
sampling), 5-fold cross-validation, 20 epochs, 160x160 input (the fallback's size). The learning rate and
batch size are not given; Adam 1e-4 and 32 are used.

n, as the paper counts: n = 1 is "only the last fully connected layer", n = 2 the last residual stage (layer4:
4 3x3 convolutions) and the FC layer, n = 3 adds layer3 ("three blocks involve 8 convolutional layers as well
as the last fully connected layer"). ferhub's ``trainable_stages`` counts residual stages only (the head
always trains): Chen's n = trainable_stages + 1.

Protocol: Table 2 gives the "average training and testing accuracy for n layers in 20 epochs" — the mean over
the 20 epochs, no epoch chosen: ``selection="epoch_mean"``, the mean held-out accuracy over the epochs of
every fold (``accuracy_epoch_mean``; the last epoch's full metrics beside it). Chen re-splits the data "for
each epoch", which puts every validation image into training sooner or later; ferhub keeps five fixed folds.

Variants: the three rows of Table 2, and Table 3's comparison without the face-extraction block (every image
resized whole, no detector).
"""

CITATION = (
    "Chen, C. Exploring factors affecting facial expression classification performance with transferred deep "
    "neural network. The Australian National University."
)

RECIPE = {
    "description": "ImageNet ResNet18 with its last 2 blocks (layer4 + FC) trainable, Adam, class-balanced "
    "sampling, 5-fold, mean over 20 epochs (Chen, Table 2: 43.24% validation).",
    "model": "resnet18",
    "model_args": {"pretrained": True, "trainable_stages": 1},
    "tiny_model": "test_resnet",
    "config_overrides": {"input_size": 160},
    "epochs": 20,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 1e-4,
    "schedule": "constant",
    "loss": "ce",
    "sampler": "balanced",
    "kfold": 5,
    "selection": "epoch_mean",
    "no_face": "fallback",
    "citation": CITATION,
}

# Table 2: n -> (training, validation accuracy %)
TABLE_2 = {1: ("34.42", "26.51"), 2: ("41.36", "43.24"), 3: ("87.68", "14.42")}
_BLOCKS = {1: "the FC layer only", 2: "layer4 + FC", 3: "layer3 + layer4 + FC"}

VARIANTS = {
    f"last{n}": {
        "description": f"n = {n}: {_BLOCKS[n]} trainable (Table 2: training {tr}%, validation {va}%).",
        "model_args": {"pretrained": True, "trainable_stages": n - 1},
    }
    for n, (tr, va) in TABLE_2.items()
}
VARIANTS["last2_no_face_extraction"] = {
    "description": "n = 2 without the face-extraction block: every image resized whole (Table 3: average "
    "training loss 2.271788, validation loss 1.91592).",
    "face_detection": False,
}
