/* mcp_fixtures.c - the diagnostic tools the MCP conformance suite calls by name
 * (test_simple_text, test_tool_with_progress, test_missing_capability, ...), served only with
 * --conformance-fixtures, so the suite's scenarios exercise this server's transport and
 * protocol code for real. They touch no sandbox. Each does what the scenario that calls it
 * describes (@modelcontextprotocol/conformance, src/scenarios/server/). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mcp.h"

/* A 1x1 red PNG and a 1 ms silent 8-bit WAV. */
static const char png_b64[] = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAA"
                              "MBAQDJ/pLvAAAAAElFTkSuQmCC";
static const char wav_b64[] = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAg"
                              "ICAgA==";

struct fixture {
	const char *name;
	const char *description;
	const char *needs; /* a client capability, or NULL */
};

static const struct fixture fixtures[] = {
        {"test_simple_text", "test fixture: returns one text block", NULL},
        {"test_image_content", "test fixture: returns a 1x1 PNG image", NULL},
        {"test_audio_content", "test fixture: returns a short WAV clip", NULL},
        {"test_embedded_resource", "test fixture: returns an embedded text resource", NULL},
        {"test_multiple_content_types", "test fixture: returns text, an image and a resource",
         NULL},
        {"test_error_handling", "test fixture: always fails (isError)", NULL},
        {"test_tool_with_progress", "test fixture: reports progress 0, 50, 100 of 100", NULL},
        {"test_logging_tool",
         "test fixture: logs one message, only when the request sets a log level", NULL},
        {"test_missing_capability", "test fixture: needs the client's sampling capability",
         "sampling"},
};

#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

json_object *mcp_fixtures_list(void)
{
	json_object *list = json_object_new_array();
	for (size_t i = 0; i < NFIXTURES; i++) {
		json_object *t = json_object_new_object();
		json_object_object_add(t, "name", json_object_new_string(fixtures[i].name));
		json_object_object_add(t, "description",
		                       json_object_new_string(fixtures[i].description));
		json_object_object_add(
		        t, "inputSchema",
		        json_tokener_parse("{\"type\":\"object\",\"properties\":{}}"));
		json_object_array_add(list, t);
	}
	return list;
}

const char *mcp_fixtures_required_capability(const char *name)
{
	for (size_t i = 0; i < NFIXTURES; i++)
		if (!strcmp(fixtures[i].name, name))
			return fixtures[i].needs;
	return NULL;
}

static json_object *block(const char *type, const char *key, const char *value, const char *mime)
{
	json_object *b = json_object_new_object();
	json_object_object_add(b, "type", json_object_new_string(type));
	json_object_object_add(b, key, json_object_new_string(value));
	if (mime)
		json_object_object_add(b, "mimeType", json_object_new_string(mime));
	return b;
}

static json_object *resource(const char *uri, const char *mime, const char *text)
{
	json_object *r = json_object_new_object(), *b = json_object_new_object();
	json_object_object_add(r, "uri", json_object_new_string(uri));
	json_object_object_add(r, "mimeType", json_object_new_string(mime));
	json_object_object_add(r, "text", json_object_new_string(text));
	json_object_object_add(b, "type", json_object_new_string("resource"));
	json_object_object_add(b, "resource", r);
	return b;
}

static json_object *result(json_object *content, int is_error)
{
	json_object *r = json_object_new_object();
	json_object_object_add(r, "content", content);
	if (is_error)
		json_object_object_add(r, "isError", json_object_new_boolean(1));
	return r;
}

static json_object *one(json_object *b)
{
	json_object *a = json_object_new_array();
	json_object_array_add(a, b);
	return a;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static json_object *with_progress(struct mcp_call *call)
{
	for (int step = 0; step <= 2 && !call->cancelled; step++) {
		if (step)
			sleep_ms(50);
		mcp_call_progress(call, step * 50.0, 100, NULL);
	}
	return result(one(block("text", "text", "progress reported: 0, 50, 100 of 100", NULL)), 0);
}

static json_object *with_logging(struct mcp_call *call)
{
	json_object *level = NULL;
	if (json_object_object_get_ex(call->meta, "io.modelcontextprotocol/logLevel", &level) &&
	    call->emit) {
		json_object *n = json_object_new_object(), *p = json_object_new_object();
		json_object_object_add(p, "level", json_object_new_string("info"));
		json_object_object_add(p, "logger", json_object_new_string("rlm"));
		json_object_object_add(p, "data", json_object_new_string("test_logging_tool ran"));
		json_object_object_add(n, "jsonrpc", json_object_new_string("2.0"));
		json_object_object_add(n, "method",
		                       json_object_new_string("notifications/message"));
		json_object_object_add(n, "params", p);
		call->emit(call->emit_ctx, n);
		json_object_put(n);
	}
	return result(one(block("text", "text", "logging tool ran", NULL)), 0);
}

json_object *mcp_fixtures_call(const char *name, json_object *args, struct mcp_call *call)
{
	(void)args;
	if (!strcmp(name, "test_simple_text"))
		return result(one(block("text", "text",
		                        "This is a simple text response for testing.", NULL)),
		              0);
	if (!strcmp(name, "test_image_content"))
		return result(one(block("image", "data", png_b64, "image/png")), 0);
	if (!strcmp(name, "test_audio_content"))
		return result(one(block("audio", "data", wav_b64, "audio/wav")), 0);
	if (!strcmp(name, "test_embedded_resource"))
		return result(one(resource("test://embedded-resource", "text/plain",
		                           "This is an embedded resource content.")),
		              0);
	if (!strcmp(name, "test_multiple_content_types")) {
		json_object *a = json_object_new_array();
		json_object_array_add(a,
		                      block("text", "text", "Multiple content types test:", NULL));
		json_object_array_add(a, block("image", "data", png_b64, "image/png"));
		json_object_array_add(a,
		                      resource("test://mixed-content-resource", "application/json",
		                               "{\"test\":\"data\",\"value\":123}"));
		return result(a, 0);
	}
	if (!strcmp(name, "test_error_handling"))
		return result(
		        one(block("text", "text",
		                  "This tool intentionally returns an error for testing", NULL)),
		        1);
	if (!strcmp(name, "test_tool_with_progress"))
		return with_progress(call);
	if (!strcmp(name, "test_logging_tool"))
		return with_logging(call);
	if (!strcmp(name, "test_missing_capability"))
		return result(one(block("text", "text", "the client declared sampling", NULL)), 0);
	return NULL;
}

/* ---- prompts ---- */

static json_object *prompt_arg(const char *name, const char *description)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "name", json_object_new_string(name));
	json_object_object_add(a, "description", json_object_new_string(description));
	json_object_object_add(a, "required", json_object_new_boolean(1));
	return a;
}

json_object *mcp_fixtures_prompts_list(void)
{
	static const char *const names[] = {"test_simple_prompt", "test_prompt_with_arguments",
	                                    "test_prompt_with_embedded_resource",
	                                    "test_prompt_with_image"};
	json_object *list = json_object_new_array();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_object *p = json_object_new_object(), *args = json_object_new_array();
		json_object_object_add(p, "name", json_object_new_string(names[i]));
		json_object_object_add(p, "description", json_object_new_string("test fixture"));
		if (i == 1) {
			json_object_array_add(args, prompt_arg("arg1", "First test argument"));
			json_object_array_add(args, prompt_arg("arg2", "Second test argument"));
		} else if (i == 2) {
			json_object_array_add(args, prompt_arg("resourceUri", "URI to embed"));
		}
		json_object_object_add(p, "arguments", args);
		json_object_array_add(list, p);
	}
	return list;
}

static json_object *message(json_object *content)
{
	json_object *m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string("user"));
	json_object_object_add(m, "content", content);
	return m;
}

static const char *string_arg(json_object *args, const char *name)
{
	json_object *v;
	return args && json_object_object_get_ex(args, name, &v) &&
	                       json_object_is_type(v, json_type_string)
	               ? json_object_get_string(v)
	               : NULL;
}

json_object *mcp_fixtures_prompts_get(const char *name, json_object *args, int *missing_arg)
{
	json_object *msgs = json_object_new_array();
	*missing_arg = 0;
	if (!strcmp(name, "test_simple_prompt")) {
		json_object_array_add(msgs,
		                      message(block("text", "text",
		                                    "This is a simple prompt for testing.", NULL)));
	} else if (!strcmp(name, "test_prompt_with_arguments")) {
		const char *a1 = string_arg(args, "arg1"), *a2 = string_arg(args, "arg2");
		if (!a1 || !a2) {
			*missing_arg = 1;
			json_object_put(msgs);
			return NULL;
		}
		char text[1024];
		snprintf(text, sizeof(text), "Prompt with arguments: arg1='%.400s', arg2='%.400s'",
		         a1, a2);
		json_object_array_add(msgs, message(block("text", "text", text, NULL)));
	} else if (!strcmp(name, "test_prompt_with_embedded_resource")) {
		const char *uri = string_arg(args, "resourceUri");
		if (!uri) {
			*missing_arg = 1;
			json_object_put(msgs);
			return NULL;
		}
		json_object_array_add(msgs, message(resource(uri, "text/plain",
		                                             "Embedded resource content for "
		                                             "testing.")));
		json_object_array_add(msgs, message(block("text", "text",
		                                          "Please process the embedded resource "
		                                          "above.",
		                                          NULL)));
	} else if (!strcmp(name, "test_prompt_with_image")) {
		json_object_array_add(msgs, message(block("image", "data", png_b64, "image/png")));
		json_object_array_add(
		        msgs,
		        message(block("text", "text", "Please analyze the image above.", NULL)));
	} else {
		json_object_put(msgs);
		return NULL;
	}
	json_object *r = json_object_new_object();
	json_object_object_add(r, "messages", msgs);
	return r;
}
