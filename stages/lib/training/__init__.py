"""The networks and how they learn: the precision variants and the one
shape they share, the training recipes, and a trained model on disk.
"""
