package vi
