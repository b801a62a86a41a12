"""Check functions for the notebooks' exercises, one module per notebook: each prints ✅ or ❌."""

from course_utils.exercises._check import report
from course_utils.exercises.nb00_setup import check_seed_everything, check_seed_predictions
from course_utils.exercises.nb01_cnn_basics import (
    check_conv_parameters,
    check_horizontal_edge_kernel,
    check_output_size,
)
from course_utils.exercises.nb02_datasets import (
    check_leaked_lesions,
    check_majority_baseline,
    check_patient_id,
)
from course_utils.exercises.nb03_imagenet_pretraining import (
    check_astronaut,
    check_cnn_code,
    check_scenario,
)
from course_utils.exercises.nb04_baselines import (
    check_balanced_accuracy_from_matrix,
    check_majority_prediction,
)
from course_utils.exercises.nb05_freeze_strategies import (
    check_chosen_on_validation,
    check_strategy_setup,
    check_trainable_parameters,
)
from course_utils.exercises.nb06_chest_xray_transfer import (
    check_sensitivity,
    check_start_chosen_on_validation,
)
from course_utils.exercises.nb07_activation_visualisation import (
    check_cam_weighting,
    check_grid_predictions,
)
from course_utils.exercises.nb08_error_analysis import check_ece, check_threshold
from course_utils.exercises.nb09_architectures import check_bigger, check_conv_macs
from course_utils.exercises.nb10_finetuning_recipes import (
    check_class_weights,
    check_param_groups,
    check_small_data_rule,
)

__all__ = [
    "check_astronaut",
    "check_balanced_accuracy_from_matrix",
    "check_bigger",
    "check_cam_weighting",
    "check_chosen_on_validation",
    "check_class_weights",
    "check_cnn_code",
    "check_conv_macs",
    "check_conv_parameters",
    "check_ece",
    "check_grid_predictions",
    "check_horizontal_edge_kernel",
    "check_leaked_lesions",
    "check_majority_baseline",
    "check_majority_prediction",
    "check_output_size",
    "check_param_groups",
    "check_patient_id",
    "check_scenario",
    "check_seed_everything",
    "check_seed_predictions",
    "check_sensitivity",
    "check_small_data_rule",
    "check_start_chosen_on_validation",
    "check_strategy_setup",
    "check_threshold",
    "check_trainable_parameters",
    "report",
]
