# Empty dependencies file for meditron.
# This may be replaced when dependencies are built.
