package main

import (
	"errors"
	"fmt"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// The API groups a manifest of this project may use. A kind outside them
// fails validation: add its group here when a manifest needs it.
var schemeBuilders = []func(*runtime.Scheme) error{
	corev1.AddToScheme,
	appsv1.AddToScheme,
	batchv1.AddToScheme,
	policyv1.AddToScheme,
	networkingv1.AddToScheme,
	rbacv1.AddToScheme,
	autoscalingv1.AddToScheme,
	autoscalingv2.AddToScheme,
	schedulingv1.AddToScheme,
	storagev1.AddToScheme,
	monitoringv1.AddToScheme, // ServiceMonitor, PodMonitor, PrometheusRule, ...
}

// strictDecoder decodes YAML into the typed struct of its apiVersion and
// kind, refusing unknown and duplicate fields (the API server's
// fieldValidation=Strict, without a server).
func strictDecoder() (runtime.Decoder, error) {
	scheme := runtime.NewScheme()
	for _, add := range schemeBuilders {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true}), nil
}

func runValidate(files []string) error {
	if len(files) == 0 {
		return errors.New("no file given")
	}
	decoder, err := strictDecoder()
	if err != nil {
		return err
	}
	failed, total := 0, 0
	for _, file := range files {
		docs, err := readDocuments(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed++
			continue
		}
		if len(docs) == 0 {
			fmt.Fprintf(os.Stderr, "%s: no object\n", file)
			failed++
		}
		for _, doc := range docs {
			total++
			if err := validate(decoder, doc); err != nil {
				fmt.Fprintln(os.Stderr, err)
				failed++
			}
		}
		fmt.Printf("%s: %d objects\n", file, len(docs))
	}
	if failed > 0 {
		return fmt.Errorf("problems: %d in %d objects", failed, total)
	}
	return nil
}

// validate decodes one document strictly; the error names the file, the
// document, its kind and name.
func validate(decoder runtime.Decoder, doc document) error {
	obj, err := doc.object()
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%v %s %s/%s", doc, obj.str("apiVersion"), obj.str("kind"), obj.str("metadata", "name"))
	if _, _, err := decoder.Decode(doc.raw, nil, nil); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if obj.str("metadata", "name") == "" {
		return fmt.Errorf("%s: metadata.name is empty", what)
	}
	return nil
}
