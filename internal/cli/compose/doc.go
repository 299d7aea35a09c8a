// Package compose runs Compose Specification projects (docker-compose.yml)
// on skiff. Files are parsed by the specification's own library
// (github.com/compose-spec/compose-go/v2): several files merged, .env and
// --env-file interpolation, profiles, extends, include and anchors.
//
// Orchestration is on the client side, through api/client only: a project
// is a set of ordinary containers, networks and volumes carrying docker
// compose's labels (com.docker.compose.project, .service,
// .container-number, .config-hash, .oneoff), named as docker compose names
// them (PROJECT-SERVICE-N, PROJECT_default, PROJECT_VOLUME). The daemon
// keeps no compose state: what runs is found again from the labels, so
// `ps`, `down` and a second `up` work from any shell, and across daemon
// restarts.
//
// Keys of the model that skiff cannot honour are reported by Unsupported,
// one entry per key and service; the CLI prints them in one warning, or
// refuses the project with --strict.
package compose
