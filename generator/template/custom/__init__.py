"""Code of the template's custom resources, embedded inline (Code.ZipFile) by the generator."""
