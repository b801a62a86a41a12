"""Check functions for the notebooks' exercises, one module per notebook: each prints ✅ or ❌."""

from course_utils.exercises._check import report
from course_utils.exercises.nb00_setup import check_nv_share, check_seeded_draws
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
from course_utils.exercises.nb03_imagenet_pretraining import check_astronaut, check_scenario
from course_utils.exercises.nb04_baselines import check_balanced_accuracy, check_pixel_features
from course_utils.exercises.nb05_freeze_strategies import (
    check_best_strategy,
    check_chosen_on_validation,
    check_strategy_setup,
    check_trainable_parameters,
)
from course_utils.exercises.nb06_chest_xray_transfer import check_sensitivity
from course_utils.exercises.nb07_activation_visualisation import (
    check_block_channels,
    check_block_side,
)
from course_utils.exercises.nb08_error_analysis import check_ece, check_threshold
from course_utils.exercises.nb09_architectures import check_cheapest, check_truncated_parameters
from course_utils.exercises.nb10_finetuning_recipes import (
    check_pretrained_lr,
    check_small_data_rule,
)

__all__ = [
    "check_astronaut",
    "check_balanced_accuracy",
    "check_best_strategy",
    "check_chosen_on_validation",
    "check_block_channels",
    "check_block_side",
    "check_cheapest",
    "check_conv_parameters",
    "check_ece",
    "check_horizontal_edge_kernel",
    "check_leaked_lesions",
    "check_majority_baseline",
    "check_nv_share",
    "check_output_size",
    "check_patient_id",
    "check_pixel_features",
    "check_pretrained_lr",
    "check_scenario",
    "check_seeded_draws",
    "check_sensitivity",
    "check_strategy_setup",
    "check_small_data_rule",
    "check_threshold",
    "check_trainable_parameters",
    "check_truncated_parameters",
    "report",
]
