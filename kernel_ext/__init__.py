"""The IPython extension (``%load_ext kernel_ext``); its magics arrive with issue 3."""
