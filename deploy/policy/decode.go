package policy

import (
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Object is one rendered object, decoded into its API type: a pointer such
// as *appsv1.Deployment, *monitoringv1.ServiceMonitor or *CNPGCluster.
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Obj        any
}

// ID names the object in messages, e.g. "Deployment/triage".
func (o Object) ID() string { return o.Kind + "/" + o.Name }

// kinds is the allow list: every object an overlay renders must be one of
// these, decoded strictly (an unknown or misspelt field is an error).
var kinds = map[string]func() any{
	"v1/Namespace":                            func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                     func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":            func() any { return &networkingv1.Ingress{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return &monitoringv1.PodMonitor{} },
	"postgresql.cnpg.io/v1/Cluster":           func() any { return &CNPGCluster{} },
	"postgresql.cnpg.io/v1/Database":          func() any { return &CNPGDatabase{} },
	"postgresql.cnpg.io/v1/ScheduledBackup":   func() any { return &CNPGScheduledBackup{} },
	"barmancloud.cnpg.io/v1/ObjectStore":      func() any { return &BarmanObjectStore{} },
}

// Decode decodes rendered documents strictly into their API types. A kind
// outside the allow list, an unknown field, or a duplicate field is an error.
func Decode(docs [][]byte) ([]Object, error) {
	objs := make([]Object, 0, len(docs))
	for i, doc := range docs {
		var tm struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("decode document %d: type: %w", i, err)
		}
		key := tm.APIVersion + "/" + tm.Kind
		newObj, ok := kinds[key]
		if !ok {
			return nil, fmt.Errorf("decode %s %s: kind not in the allow list of policy.Decode", key, tm.Metadata.Name)
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", key, tm.Metadata.Name, err)
		}
		objs = append(objs, Object{APIVersion: tm.APIVersion, Kind: tm.Kind, Name: tm.Metadata.Name, Namespace: tm.Metadata.Namespace, Obj: obj})
	}
	return objs, nil
}

// CNPGCluster is the part of CloudNativePG's postgresql.cnpg.io/v1 Cluster
// that Sidekick's manifests use. Decoding is strict, so a field outside this
// subset (or a typo) fails the policy test until it is added here.
type CNPGCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Instances             int    `json:"instances"`
		ImageName             string `json:"imageName,omitempty"`
		PrimaryUpdateStrategy string `json:"primaryUpdateStrategy,omitempty"`
		Storage               struct {
			Size         string `json:"size"`
			StorageClass string `json:"storageClass,omitempty"`
		} `json:"storage"`
		Bootstrap struct {
			InitDB struct {
				Database string `json:"database"`
				Owner    string `json:"owner"`
			} `json:"initdb"`
		} `json:"bootstrap"`
		Managed struct {
			Roles []struct {
				Name           string                       `json:"name"`
				Ensure         string                       `json:"ensure,omitempty"`
				Login          bool                         `json:"login,omitempty"`
				PasswordSecret *corev1.LocalObjectReference `json:"passwordSecret,omitempty"`
			} `json:"roles"`
		} `json:"managed"`
		Affinity struct {
			EnablePodAntiAffinity bool   `json:"enablePodAntiAffinity,omitempty"`
			TopologyKey           string `json:"topologyKey,omitempty"`
			PodAntiAffinityType   string `json:"podAntiAffinityType,omitempty"`
		} `json:"affinity"`
		// Plugins: the Barman Cloud plugin archives WAL and takes backups.
		// The deprecated spec.backup and spec.monitoring.enablePodMonitor
		// are left out on purpose: strict decoding rejects them.
		Plugins []struct {
			Name          string            `json:"name"`
			Enabled       *bool             `json:"enabled,omitempty"`
			IsWALArchiver bool              `json:"isWALArchiver,omitempty"`
			Parameters    map[string]string `json:"parameters,omitempty"`
		} `json:"plugins,omitempty"`
	} `json:"spec"`
}

// CNPGScheduledBackup is the part of CloudNativePG's ScheduledBackup that
// Sidekick's manifests use.
type CNPGScheduledBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Schedule             string `json:"schedule"`
		Immediate            bool   `json:"immediate,omitempty"`
		BackupOwnerReference string `json:"backupOwnerReference,omitempty"`
		Cluster              struct {
			Name string `json:"name"`
		} `json:"cluster"`
		Method              string `json:"method"`
		PluginConfiguration struct {
			Name string `json:"name"`
		} `json:"pluginConfiguration"`
	} `json:"spec"`
}

// BarmanObjectStore is the part of the Barman Cloud plugin's ObjectStore
// (barmancloud.cnpg.io/v1) that Sidekick's manifests use.
type BarmanObjectStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Configuration struct {
			DestinationPath string `json:"destinationPath"`
			EndpointURL     string `json:"endpointURL,omitempty"`
			S3Credentials   *struct {
				AccessKeyID     corev1.SecretKeySelector `json:"accessKeyId"`
				SecretAccessKey corev1.SecretKeySelector `json:"secretAccessKey"`
			} `json:"s3Credentials,omitempty"`
			WAL struct {
				Compression string `json:"compression,omitempty"`
			} `json:"wal"`
			Data struct {
				Compression string `json:"compression,omitempty"`
			} `json:"data"`
		} `json:"configuration"`
		RetentionPolicy string `json:"retentionPolicy,omitempty"`
	} `json:"spec"`
}

// CNPGDatabase is the part of CloudNativePG's postgresql.cnpg.io/v1 Database
// that Sidekick's manifests use.
type CNPGDatabase struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Name    string `json:"name"`
		Owner   string `json:"owner"`
		Cluster struct {
			Name string `json:"name"`
		} `json:"cluster"`
		Schemas []struct {
			Name   string `json:"name"`
			Owner  string `json:"owner"`
			Ensure string `json:"ensure,omitempty"`
		} `json:"schemas"`
	} `json:"spec"`
}
