/*
 * Shopfloor publisher identity plugin for Mosquitto 2.0 (plugin interface v5).
 *
 * A subscriber cannot learn from MQTT who published a message, yet Shopfloor
 * stores the authenticated thing as the publisher of every message. For each
 * PUBLISH a client sends, this plugin removes any user property named
 * "shopfloor-publisher" the client set itself (so it cannot be forged) and
 * adds "shopfloor-publisher" = the client's authenticated username (the thing
 * id). MQTT v5 subscribers, such as the Shopfloor bridge, read it from there.
 *
 * Written by hand: no library or stock plugin does this. Only the public
 * broker API from mosquitto_broker.h / mosquitto.h is used, so the plugin
 * builds against the headers of the Debian package mosquitto-dev.
 *
 * Mosquitto 2.0 does not pass will messages through MOSQ_EVT_MESSAGE, so a
 * will would keep whatever "shopfloor-publisher" its client put in it. The
 * broker checks a will's PUBLISH permission only after the client has gone,
 * so the plugin keeps the set of connected clients and refuses publishing to
 * a client that is not in it: wills are never delivered. This needs the
 * plugin to be loaded before the dynamic security plugin, which otherwise
 * answers every permission check first.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#define PUBLISHER_PROPERTY "shopfloor-publisher"

static mosquitto_plugin_id_t *plugin_id = NULL;

/*
 * The connected clients, as an open-addressing hash set of pointers. The
 * broker runs plugin callbacks on one thread, so no locking is needed.
 */
#define TOMBSTONE ((const struct mosquitto *)1)

static const struct mosquitto **slots = NULL;
static size_t slot_count = 0;
static size_t used_slots = 0; /* members and tombstones */
static size_t member_count = 0;

static size_t slot_of(const struct mosquitto *client)
{
	uintptr_t h = (uintptr_t)client;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h & (slot_count - 1);
}

static bool connected_contains(const struct mosquitto *client)
{
	size_t i;

	if(slot_count == 0){
		return false;
	}
	for(i = slot_of(client); slots[i] != NULL; i = (i + 1) & (slot_count - 1)){
		if(slots[i] == client){
			return true;
		}
	}
	return false;
}

static int connected_add(const struct mosquitto *client);

static int connected_grow(void)
{
	const struct mosquitto **old = slots;
	size_t old_count = slot_count;
	size_t i;

	/* Rehashing drops the tombstones; only a table that is really full doubles. */
	if(old_count == 0){
		slot_count = 1024;
	}else if((member_count + 1) * 4 > old_count){
		slot_count = old_count * 2;
	}
	slots = calloc(slot_count, sizeof(*slots));
	if(slots == NULL){
		slots = old;
		slot_count = old_count;
		return MOSQ_ERR_NOMEM;
	}
	used_slots = 0;
	member_count = 0;
	for(i = 0; i < old_count; i++){
		if(old[i] != NULL && old[i] != TOMBSTONE){
			connected_add(old[i]);
		}
	}
	free(old);
	return MOSQ_ERR_SUCCESS;
}

static int connected_add(const struct mosquitto *client)
{
	size_t i;

	if(connected_contains(client)){
		return MOSQ_ERR_SUCCESS;
	}
	/* Keep the table at most half full so probes stay short and always end. */
	if((used_slots + 1) * 2 > slot_count && connected_grow() != MOSQ_ERR_SUCCESS){
		return MOSQ_ERR_NOMEM;
	}
	for(i = slot_of(client); slots[i] != NULL && slots[i] != TOMBSTONE; i = (i + 1) & (slot_count - 1)){
	}
	if(slots[i] == NULL){
		used_slots++;
	}
	slots[i] = client;
	member_count++;
	return MOSQ_ERR_SUCCESS;
}

static void connected_remove(const struct mosquitto *client)
{
	size_t i;

	if(slot_count == 0){
		return;
	}
	for(i = slot_of(client); slots[i] != NULL; i = (i + 1) & (slot_count - 1)){
		if(slots[i] == client){
			slots[i] = TOMBSTONE;
			member_count--;
			return;
		}
	}
}

/* True when the property is a user property named PUBLISHER_PROPERTY. */
static bool is_publisher_property(const mosquitto_property *prop)
{
	char *name = NULL;
	char *value = NULL;
	bool found;

	if(mosquitto_property_identifier(prop) != MQTT_PROP_USER_PROPERTY){
		return false;
	}
	if(mosquitto_property_read_string_pair(prop, MQTT_PROP_USER_PROPERTY, &name, &value, false) == NULL){
		return false;
	}
	found = name != NULL && strcmp(name, PUBLISHER_PROPERTY) == 0;
	mosquitto_free(name);
	mosquitto_free(value);
	return found;
}

/*
 * Append a copy of one property to a list. The broker's property list is
 * opaque, so a property is copied by reading its value with the accessor of
 * its type and adding it again.
 */
static int copy_property(mosquitto_property **dest, const mosquitto_property *prop)
{
	int identifier = mosquitto_property_identifier(prop);
	uint8_t byte_value;
	uint16_t int16_value;
	uint32_t int32_value;
	void *binary = NULL;
	uint16_t binary_len = 0;
	char *name = NULL;
	char *value = NULL;
	int rc;

	switch(identifier){
		case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
		case MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
		case MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
		case MQTT_PROP_MAXIMUM_QOS:
		case MQTT_PROP_RETAIN_AVAILABLE:
		case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
		case MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE:
		case MQTT_PROP_SHARED_SUB_AVAILABLE:
			if(mosquitto_property_read_byte(prop, identifier, &byte_value, false) == NULL){
				return MOSQ_ERR_INVAL;
			}
			return mosquitto_property_add_byte(dest, identifier, byte_value);

		case MQTT_PROP_SERVER_KEEP_ALIVE:
		case MQTT_PROP_RECEIVE_MAXIMUM:
		case MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
		case MQTT_PROP_TOPIC_ALIAS:
			if(mosquitto_property_read_int16(prop, identifier, &int16_value, false) == NULL){
				return MOSQ_ERR_INVAL;
			}
			return mosquitto_property_add_int16(dest, identifier, int16_value);

		case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
		case MQTT_PROP_SESSION_EXPIRY_INTERVAL:
		case MQTT_PROP_WILL_DELAY_INTERVAL:
		case MQTT_PROP_MAXIMUM_PACKET_SIZE:
			if(mosquitto_property_read_int32(prop, identifier, &int32_value, false) == NULL){
				return MOSQ_ERR_INVAL;
			}
			return mosquitto_property_add_int32(dest, identifier, int32_value);

		case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
			if(mosquitto_property_read_varint(prop, identifier, &int32_value, false) == NULL){
				return MOSQ_ERR_INVAL;
			}
			return mosquitto_property_add_varint(dest, identifier, int32_value);

		case MQTT_PROP_CORRELATION_DATA:
		case MQTT_PROP_AUTHENTICATION_DATA:
			if(mosquitto_property_read_binary(prop, identifier, &binary, &binary_len, false) == NULL){
				return MOSQ_ERR_NOMEM;
			}
			rc = mosquitto_property_add_binary(dest, identifier, binary, binary_len);
			mosquitto_free(binary);
			return rc;

		case MQTT_PROP_CONTENT_TYPE:
		case MQTT_PROP_RESPONSE_TOPIC:
		case MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER:
		case MQTT_PROP_AUTHENTICATION_METHOD:
		case MQTT_PROP_RESPONSE_INFORMATION:
		case MQTT_PROP_SERVER_REFERENCE:
		case MQTT_PROP_REASON_STRING:
			if(mosquitto_property_read_string(prop, identifier, &value, false) == NULL){
				return MOSQ_ERR_NOMEM;
			}
			rc = mosquitto_property_add_string(dest, identifier, value);
			mosquitto_free(value);
			return rc;

		case MQTT_PROP_USER_PROPERTY:
			if(mosquitto_property_read_string_pair(prop, identifier, &name, &value, false) == NULL){
				return MOSQ_ERR_NOMEM;
			}
			rc = mosquitto_property_add_string_pair(dest, identifier, name, value);
			mosquitto_free(name);
			mosquitto_free(value);
			return rc;

		default:
			/* An identifier this plugin does not know: refuse rather than drop data silently. */
			return MOSQ_ERR_NOT_SUPPORTED;
	}
}

/* Replace *proplist by a copy without the client's PUBLISHER_PROPERTY entries. */
static int strip_publisher_properties(mosquitto_property **proplist)
{
	const mosquitto_property *prop;
	mosquitto_property *kept = NULL;
	bool forged = false;
	int rc;

	for(prop = *proplist; prop != NULL; prop = mosquitto_property_next(prop)){
		if(is_publisher_property(prop)){
			forged = true;
			break;
		}
	}
	if(!forged){
		/* The common case: nothing to remove, so the list is left untouched. */
		return MOSQ_ERR_SUCCESS;
	}

	for(prop = *proplist; prop != NULL; prop = mosquitto_property_next(prop)){
		if(is_publisher_property(prop)){
			continue;
		}
		rc = copy_property(&kept, prop);
		if(rc != MOSQ_ERR_SUCCESS){
			mosquitto_property_free_all(&kept);
			return rc;
		}
	}
	/* The broker stores whatever list the event holds afterwards, and frees only that one. */
	mosquitto_property_free_all(proplist);
	*proplist = kept;
	return MOSQ_ERR_SUCCESS;
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *message = event_data;
	const char *username;
	int rc;

	(void)event;
	(void)userdata;

	rc = strip_publisher_properties(&message->properties);
	if(rc != MOSQ_ERR_SUCCESS){
		/* Never let a message through that may still carry a forged identity. */
		mosquitto_log_printf(MOSQ_LOG_WARNING,
				"shopfloor_publisher: refusing message on '%s': cannot rewrite its properties (%d)",
				message->topic, rc);
		return rc;
	}

	username = mosquitto_client_username(message->client);
	if(username == NULL){
		return MOSQ_ERR_SUCCESS;
	}
	return mosquitto_property_add_string_pair(&message->properties, MQTT_PROP_USER_PROPERTY,
			PUBLISHER_PROPERTY, username);
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *auth = event_data;

	(void)event;
	(void)userdata;

	/* The dynamic security plugin decides; a client that fails is removed on disconnect. */
	if(connected_add(auth->client) != MOSQ_ERR_SUCCESS){
		return MOSQ_ERR_NOMEM;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *disconnect = event_data;

	(void)event;
	(void)userdata;

	connected_remove(disconnect->client);
	return MOSQ_ERR_SUCCESS;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *check = event_data;

	(void)event;
	(void)userdata;

	if(check->access == MOSQ_ACL_WRITE && !connected_contains(check->client)){
		/* Only a will is published for a client that is gone; see the top of this file. */
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"shopfloor_publisher: not delivering the will of '%s' on '%s'",
				mosquitto_client_id(check->client), check->topic);
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;

	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5){
			return 5;
		}
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;

	int rc;

	plugin_id = identifier;
	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, NULL);
	}
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
	}
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
	}
	return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;

	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	free(slots);
	slots = NULL;
	slot_count = 0;
	used_slots = 0;
	member_count = 0;
	return MOSQ_ERR_SUCCESS;
}
