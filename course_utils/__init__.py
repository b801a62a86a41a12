"""Helpers for the course "Transfer learning for medical images"."""

from course_utils.config import get_device, get_profile, seed_everything
from course_utils.data import make_loader, make_sample
from course_utils.environment import print_env
from course_utils.metrics import f1_table
from course_utils.models import build_model, freeze
from course_utils.train import evaluate, fit, predict

__all__ = [
    "build_model",
    "evaluate",
    "f1_table",
    "fit",
    "freeze",
    "get_device",
    "get_profile",
    "make_loader",
    "make_sample",
    "predict",
    "print_env",
    "seed_everything",
]
__version__ = "0.1.0"
