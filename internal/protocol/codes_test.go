package protocol_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// TestErrorCodesListsEveryCode: every Code constant of protocol.go is in
// ErrorCodes, so that metrics start every code at 0.
func TestErrorCodesListsEveryCode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "protocol.go", nil, 0)
	require.NoError(t, err)
	var consts []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && strings.HasPrefix(vs.Names[0].Name, "Code") {
			lit := vs.Values[0].(*ast.BasicLit)
			v, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			consts = append(consts, v)
		}
		return true
	})
	require.NotEmpty(t, consts)
	assert.ElementsMatch(t, consts, protocol.ErrorCodes)
}

// TestStatusIsTheDocsTable: the status of each code is the one of
// docs/protocol.md's table of errors, and every code is in it.
func TestStatusIsTheDocsTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| (\\d{3}) \\| `([a-z_]+)` \\|")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		status, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		assert.Equal(t, status, protocol.Status(m[2]), "code %s", m[2])
		documented[m[2]] = true
	}
	for _, code := range protocol.ErrorCodes {
		assert.True(t, documented[code], "%s is not in docs/protocol.md's table of errors", code)
	}
}

func TestAppendErrorDecodes(t *testing.T) {
	tests := []protocol.ErrorBody{
		{Code: protocol.CodeBadRequest, Message: `a "quoted" message`},
		{Code: protocol.CodeRateLimited, Message: "slow down", RetryAfter: 2},
		{Code: protocol.CodeTooLarge, Message: "m", Batch: "b\u00e91"},
	}
	for _, give := range tests {
		var got protocol.ErrorReply
		require.NoError(t, json.Unmarshal(protocol.AppendError(nil, give), &got))
		assert.Equal(t, give, got.Error)
	}
}
