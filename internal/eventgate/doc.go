// Package eventgate is EventGate's protocol as a producer sees it, for production code (the canary) and for the
// fake intake in eventgate/fakeintake alike:
//
//   - DecodeDocument decodes a schema (or event) served as JSON or YAML into the values jsonschema validates;
//   - Compile compiles a draft-07 schema without ever loading a remote reference;
//   - ValidationMessages turns a validation error into short messages;
//   - ParseResponse parses an intake's 207, 400 or 500 body ({"invalid":[...],"error":[...]}).
//
// Only 201 (all accepted) and 202 (accepted with ?hasty=true) mean success; 400 is all invalid, 207 some
// accepted and some failed, 500 all failed with at least one error (for example an unknown schema version:
// {"error":[{"context":{"message":"Failed loading schema at <uri>"}}]}).
package eventgate
