package coexai

// Unexported request and answer bodies, shown to the tests' package so that the OpenAPI check covers them.
var UnexportedModels = map[string]interface{}{
	"JobBatchCreate":   jobBatchCreate{},
	"JobBatchRead":     jobBatchRead{},
	"UploadUrlRequest": uploadURLRequest{},
}
