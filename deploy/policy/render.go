// Package policy renders Sidekick's Kustomize overlays without a cluster,
// decodes every object strictly into its Kubernetes (or operator) API type,
// and checks the deployment rules every workload must follow: probes,
// resources, security context, disruption budgets, topology spread, pinned
// images, references that resolve, secrets that come from Secrets (and the
// tokens each service cannot work without), Services that select something,
// network policies that allow only what each service needs, and share links
// that point where the Ingress publishes the console. It also checks the
// Dockerfile. The tests in this package run it on every overlay.
package policy

import (
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Render builds the kustomization in dir (a path on disk) the way
// `kubectl kustomize dir` would, with no network and no plugins, and returns
// one YAML document per resulting object.
func Render(dir string) ([][]byte, error) {
	return RenderFS(filesys.MakeFsOnDisk(), dir)
}

// RenderFS is Render on any kustomize file system, e.g. an in-memory one.
func RenderFS(fs filesys.FileSystem, dir string) ([][]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	var docs [][]byte
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("render %s: %s as YAML: %w", dir, r.CurId(), err)
		}
		docs = append(docs, b)
	}
	return docs, nil
}
