"""Emits the CloudFormation template from config/product.yaml and builds the release bundle."""
