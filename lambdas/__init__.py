"""Import workflow: batch manifests in S3 -> Step Functions -> HealthImaging imports -> DynamoDB.

Handlers (one Lambda function each) are thin adapters; the logic lives in modules that take their
boto3 clients as arguments. This package never imports scp/ and needs nothing beyond boto3.
"""
