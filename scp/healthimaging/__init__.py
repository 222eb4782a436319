"""The product's one HealthImaging DICOMweb client (DESIGN section 9): SigV4-signed HTTPS to
`dicom-medical-imaging.{region}.amazonaws.com/datastore/{id}` (client.py), the STOW-RS response
model (stow.py), and which C-STORE goes straight to HealthImaging (routing.py).

Sources, named where each fact is used:
- [DICOMWEB] Developer guide, "Using DICOMweb with AWS HealthImaging": the DICOMweb APIs are not
  in the AWS CLI or SDKs; requests are HTTPS signed with SigV4.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/using-dicomweb.html
- [STORE] Developer guide, "Storing instances with STOW-RS": StoreDICOM is
  `POST https://dicom-medical-imaging.{region}.amazonaws.com/datastore/{datastoreId}/studies`,
  SigV4 for service `medical-imaging`, `Content-Type: application/dicom` with one DICOM P10 file
  as the body and `Accept: application/dicom+json`; at most 1 GB of DICOM data per request; the
  JSON response conforms to DICOMweb STOW-RS; stored data joins primary image sets by the import
  jobs' rules and data whose metadata conflicts goes to a non-primary image set.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/dicomweb-storing.html
- [SEARCH] Developer guide, "Searching DICOM data in HealthImaging": QIDO-RS (SearchDICOMStudies,
  SearchDICOMSeries, SearchDICOMInstances) returns at most 10,000 records and references primary
  image sets only.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/dicomweb-search.html
- [RETRIEVE] Developer guide, "Retrieving DICOM data from HealthImaging": GetDICOMInstance is
  `GET .../studies/{study}/series/{series}/instances/{sop}`, primary image sets unless
  `imageSetId` is given.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/dicomweb-retrieve.html
- [THROTTLE] Developer guide, "AWS HealthImaging throttling limits": a ThrottlingException when
  a limit is exceeded; GetDICOMInstance 50 TPS (burst 100). StoreDICOM's and the searches' limits
  are not in the copies we found.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/throttling-limits.html
"""
