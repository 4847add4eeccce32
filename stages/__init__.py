"""bnn-study: what a 1-bit network costs and saves against its 32-bit twin.

One module per DVC stage. Importing the package prepares the environment
before anything imports TensorFlow: Larq needs Keras 2 (``tf-keras``), which
TensorFlow 2.16 only selects when ``TF_USE_LEGACY_KERAS=1`` is set, and
TensorFlow's C++ start-up log lines would otherwise drown the stage logs.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
