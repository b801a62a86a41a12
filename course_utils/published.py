"""Published numbers the course sets its own beside, each with its source.

- Patel, D. "Transfer Learning in CNNs With Medical Images" (slides, 2019): the seed's F1 tables.
- Doerrich et al. 2024, "Rethinking model prototyping through the MedMNIST+ dataset collection"
  (arXiv:2404.15786): ImageNet-pretrained models on DermaMNIST / PneumoniaMNIST at 224 px.
- Kermany et al. 2018, Cell 172(5):1122-1131: Inception v3 on the paediatric chest X-rays.
- Codella et al. 2019 (arXiv:1902.03368): the ISIC 2018 challenge report.
"""

from __future__ import annotations

import pandas as pd

# Patel, "Transfer Learning in CNNs With Medical Images" (slides, 2019): F1 on HAM10000 (VGG16).
SEED_HAM10000 = pd.DataFrame(
    {
        "decision tree": [0.09, 0.20, 0.26, 0.00, 0.19, 0.76, 0.06, 0.57, 0.23],
        "random forest": [0.25, 0.38, 0.40, 0.00, 0.22, 0.84, 0.00, 0.70, 0.30],
        "CNN random weights": [0.31, 0.41, 0.37, 0.00, 0.34, 0.88, 0.17, 0.72, 0.35],
        "all layers": [0.36, 0.64, 0.64, 0.27, 0.58, 0.92, 0.78, 0.81, 0.60],
        "last block": [0.27, 0.59, 0.58, 0.00, 0.54, 0.91, 0.50, 0.79, 0.48],
        "first block": [0.00, 0.00, 0.00, 0.00, 0.01, 0.80, 0.00, 0.66, 0.11],
        "first + last blocks": [0.36, 0.64, 0.60, 0.07, 0.53, 0.91, 0.50, 0.79, 0.52],
    },
    index=["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc", "micro avg", "macro avg"],
)
# The same slides: F1 on the paediatric chest X-rays.
SEED_XRAY = pd.DataFrame(
    {
        "decision tree": [0.75, 0.91, 0.87, 0.83],
        "random forest": [0.88, 0.96, 0.94, 0.92],
        "CNN random weights": [0.89, 0.96, 0.94, 0.92],
        "CNN ImageNet weights": [0.91, 0.97, 0.95, 0.94],
        "CNN HAM10000 weights": [0.90, 0.96, 0.94, 0.93],
    },
    index=["normal", "pneumonia", "micro avg", "macro avg"],
)
# Other published numbers, each with its source.
REFERENCES = pd.DataFrame(
    [
        (
            "DermaMNIST, ResNet-18 (ImageNet, 224 px)",
            "accuracy",
            0.823,
            "Doerrich et al. 2024 (MedMNIST+ benchmark, arXiv:2404.15786)",
        ),
        (
            "DermaMNIST, DenseNet-121 (ImageNet, 224 px)",
            "accuracy",
            0.847,
            "Doerrich et al. 2024 (MedMNIST+ benchmark, arXiv:2404.15786)",
        ),
        (
            "DermaMNIST, VGG16 (ImageNet, 224 px)",
            "accuracy",
            0.816,
            "Doerrich et al. 2024 (MedMNIST+ benchmark, arXiv:2404.15786)",
        ),
        (
            "PneumoniaMNIST, ResNet-18 (ImageNet, 224 px)",
            "accuracy",
            0.911,
            "Doerrich et al. 2024 (MedMNIST+ benchmark, arXiv:2404.15786)",
        ),
        (
            "PneumoniaMNIST, DenseNet-121 (ImageNet, 224 px)",
            "accuracy",
            0.889,
            "Doerrich et al. 2024 (MedMNIST+ benchmark, arXiv:2404.15786)",
        ),
        (
            "PneumoniaMNIST, VGG16 (ImageNet, 224 px)",
            "accuracy",
            0.874,
            "Doerrich et al. 2024 (MedMNIST+ benchmark, arXiv:2404.15786)",
        ),
        (
            "Chest X-ray, pneumonia vs normal (Inception v3)",
            "accuracy",
            0.928,
            "Kermany et al. 2018",
        ),
        ("Chest X-ray, pneumonia vs normal (Inception v3)", "AUC", 0.968, "Kermany et al. 2018"),
        ("ISIC 2018 Task 3 winner", "balanced accuracy", 0.885, "Codella et al. 2019"),
    ],
    columns=["task", "metric", "value", "source"],
)
