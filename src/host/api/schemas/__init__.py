"""The API's request and response bodies (their OpenAPI schemas, with examples), by
resource. Request bodies bound every number, so no input can overflow; `host.api.inputs`
says what their strings and instants must be."""
