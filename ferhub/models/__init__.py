"""Model families. Importing this package registers every family; see :func:`create_model`."""

from ferhub.models import (
    big_xception,  # noqa: F401  (registers)
    ensemble,  # noqa: F401  (registers)
    faceapi_net,  # noqa: F401  (registers)
    facemood_net,  # noqa: F401  (registers)
    fcn,  # noqa: F401  (registers)
    irv1,  # noqa: F401  (registers)
    lightcnn,  # noqa: F401  (registers)
    mini_xception,  # noqa: F401  (registers)
    pyemotion_net,  # noqa: F401  (registers)
    resnet,  # noqa: F401  (registers)
    transfer,  # noqa: F401  (registers)
)
from ferhub.models._registry import (
    ModelEntry,
    UnknownModelError,
    build_from_config,
    create_model,
    get_entry,
    list_models,
    register_model,
)

__all__ = [
    "ModelEntry",
    "UnknownModelError",
    "build_from_config",
    "create_model",
    "get_entry",
    "list_models",
    "register_model",
]
