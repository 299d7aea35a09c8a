// Package secrets keeps skiff's secrets: named sets of KEY=VALUE pairs,
// versioned, with their values encrypted at rest in the state database.
//
// Encryption: every version's values are sealed with AES-256-GCM under a
// random data key, with the secret's name and version as additional data
// (so a ciphertext moved to another row does not open). The data key is
// itself sealed with AES-256-GCM under the key file ROOT/secrets.key,
// made (32 random bytes, mode 0600) when the daemon first starts, and
// kept outside the database: a copy of skiff.db alone reveals nothing.
// Losing the key file loses every secret; a wrong key file is refused.
//
// A value leaves this package only through Reveal (the API's
// "secret get --reveal") and Resolve (a replica's environment at start);
// everything else (List, Inspect, events) carries names, keys and
// versions only.
package secrets
