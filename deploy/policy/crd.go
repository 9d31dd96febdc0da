package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// CRDs holds the OpenAPI schemas of CustomResourceDefinitions, one per
// served group, version and kind, and checks custom resources against
// them as the API server does when they are applied: fields the schema
// does not know (which the server would silently prune, so a misspelt
// setting is lost), then types, enums, patterns, bounds and required
// fields. The schemas come from the operators' own CRD manifests
// (CRDSources), so a resource that passes here is one the cluster
// accepts, not only one that fits our Go types.
type CRDs struct {
	byKind map[string]crdSchema
}

type crdSchema struct {
	structural *structuralschema.Structural
	validator  validation.SchemaValidator
}

// CRDSource is where an operator's CRD manifests are: a Go module (the
// operators publish their repositories as modules, so the Go module proxy
// serves them offline-reproducibly at a pinned version) and the files in
// it.
type CRDSource struct {
	Module, Version string
	Files           []string
}

// CRDSources are the CRDs of every custom resource Sidekick's manifests
// and the NATS chart's rendering use, at the operator versions the docs
// name (docs/operations.md, "Install").
var CRDSources = []CRDSource{
	{Module: "github.com/cloudnative-pg/cloudnative-pg", Version: "v1.28.2", Files: []string{
		"config/crd/bases/postgresql.cnpg.io_clusters.yaml",
		"config/crd/bases/postgresql.cnpg.io_databases.yaml",
		"config/crd/bases/postgresql.cnpg.io_scheduledbackups.yaml",
	}},
	{Module: "github.com/cloudnative-pg/plugin-barman-cloud", Version: "v0.15.0", Files: []string{
		"config/crd/bases/barmancloud.cnpg.io_objectstores.yaml",
	}},
	{Module: "github.com/prometheus-operator/prometheus-operator", Version: "v0.94.0", Files: []string{
		"example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
		"example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
		"example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
	}},
}

// LoadCRDs reads CRD manifests (files of one CustomResourceDefinition
// each) and builds a validator per served version.
func LoadCRDs(paths ...string) (*CRDs, error) {
	c := &CRDs{byKind: map[string]crdSchema{}}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read CRD: %w", err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			return nil, fmt.Errorf("decode CRD %s: %w", filepath.Base(path), err)
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			var internal apiextensions.JSONSchemaProps
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
				return nil, fmt.Errorf("CRD %s %s: convert schema: %w", crd.Name, v.Name, err)
			}
			structural, err := structuralschema.NewStructural(&internal)
			if err != nil {
				return nil, fmt.Errorf("CRD %s %s: structural schema: %w", crd.Name, v.Name, err)
			}
			validator, _, err := validation.NewSchemaValidator(&internal)
			if err != nil {
				return nil, fmt.Errorf("CRD %s %s: validator: %w", crd.Name, v.Name, err)
			}
			c.byKind[crd.Spec.Group+"/"+v.Name+"/"+crd.Spec.Names.Kind] = crdSchema{structural: structural, validator: validator}
		}
	}
	return c, nil
}

// Knows reports whether apiVersion/kind (e.g. "postgresql.cnpg.io/v1" and
// "Cluster") has a loaded schema.
func (c *CRDs) Knows(apiVersion, kind string) bool {
	_, ok := c.byKind[apiVersion+"/"+kind]
	return ok
}

// Validate checks one rendered document against its CRD's schema: every
// field the schema does not know, then every schema violation, in one
// error.
func (c *CRDs) Validate(doc []byte) error {
	var obj map[string]any
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	s, ok := c.byKind[apiVersion+"/"+kind]
	if !ok {
		return fmt.Errorf("%s %s: no CRD schema loaded", apiVersion, kind)
	}
	var problems []string
	// Pruning works on a copy: it removes what it reports.
	opts := structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}
	for _, p := range pruning.PruneWithOptions(runtime.DeepCopyJSON(obj), s.structural, true, opts) {
		problems = append(problems, "unknown field "+p)
	}
	for _, e := range validation.ValidateCustomResource(nil, obj, s.validator) {
		problems = append(problems, e.Error())
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return errors.New(strings.Join(problems, "; "))
}
