"""Chapter 3: regression with a deep network against linear regression (Boston, California).

The same run as ``fastdl train regression`` (see :mod:`fastdl.recipes.regression` for the model, the
results measured and the options)::

    python examples/regression.py            # full run
    python examples/regression.py --smoke    # seconds
"""

from fastdl.recipes.regression import main

if __name__ == "__main__":
    main()
