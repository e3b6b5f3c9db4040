// Package canary produces one canary event per stream, at a schema version that is rolled out everywhere, and
// says exactly what failed when something does.
//
// For each stream, a run:
//
//  1. asks schemasync for the safe version of the stream's schema title (each node in turn: no single point of
//     failure), or, in the incident mode VersionLatest, reads <first schema base URI>/<title>/latest as the old
//     job did;
//  2. fetches <base>/<title>/<version> from the schema base URIs in order, as EventGate does (YAML or JSON),
//     and compiles it once per (title, version): later runs reuse it;
//  3. builds the event from examples[0], setting meta.stream, meta.domain = "canary", meta.dt (now, RFC 3339
//     UTC) and $schema = /<title>/<version>;
//  4. validates it locally (santhosh-tekuri/jsonschema, draft-07, formats asserted, no network for $schema);
//  5. POSTs it as a JSON array to every destination intake. Only 201 and 202 count as success. 207, 400 and
//     500 bodies are parsed and their messages reported. Failures that may pass are retried with exponential
//     backoff, a bounded number of times: a connection refused, reset or closed before an answer, a timeout,
//     429, 502, 503, 504, and a 500 that is not EventGate's (from a proxy). Certificate, TLS and protocol errors
//     and other statuses (501, 505, ...) fail the same way again and are not retried. A 500 that carries
//     EventGate's {"error":[...]} is the intake's verdict on the event: it is reported, not retried, because
//     hiding it is exactly what a canary must not do.
//
// Each Delivery says what became of the event (Outcome): accepted, refused (the intake answered otherwise),
// not sent, or unknown (sent, no answer: the intake may have it). A redirect is followed only within the
// intake's scheme, host and port, and only one that keeps the POST and its body (307, 308): a 301, 302 or
// 303 would arrive as a GET without the event, and is refused.
//
// Everything from outside is bounded: schema documents by MaxSchemaBytes and, in shape, by nesting depth (64
// levels) and nodes (65,536, YAML aliases expanded); stream configs by MaxSchemaBytes and MaxStreams; titles
// and stream names by MaxNameBytes (printable, no empty, "." or ".." segment); errors by MaxErrorBytes,
// escaped for terminals, with URL credentials shown as ***.
//
// Each failure is a *StreamError naming the stream and the Step; one stream's failure never stops another.
// Streams run concurrently, bounded by Config.Concurrency.
//
// The pure parts (BuildEvent, ParseConfig, ParseStreamConfig, metric rendering) take their inputs as values;
// the Runner only adds HTTP, a clock and concurrency around them.
package canary
