"""The release bundle, dist/<version>/ (`make release`): `bundle` assembles it and runs the
`gates` (cfn-lint, checkov, hadolint); `image`, `oci`, `sbom` and `lock` build the SCP image
from Debian packages and locked wheels; `package` the container context and Lambda sources;
`marketplace` the Marketplace submission files; `publish` pushes the image; `snapshot` refreshes
the template snapshot and README tables. May import generator.template and generator.documents."""
