"""Evaluation metrics shared by training and analysis: COCO mAP, P/R/F1, confusion matrices."""
