// Microsoft's own token handling from @microsoft/omnichannel-chat-widget, as the widget wires it,
// exposed on window.msWidget for tests/tests/browser.rs. Only loader.mjs (the closed-source
// loader step) and the chat SDK recorder below are written here.
import { FacadeChatSDK } from "./node_modules/@microsoft/omnichannel-chat-widget/lib/esm/common/facades/FacadeChatSDK.js";
import { handleAuthentication } from "./node_modules/@microsoft/omnichannel-chat-widget/lib/esm/components/livechatwidget/common/authHelper.js";
import { BroadcastService, BroadcastServiceInitialize } from "./node_modules/@microsoft/omnichannel-chat-components/lib/esm/services/BroadcastService.js";
import { makeGetAuthToken } from "./loader.mjs";

// Omnichannel's chat SDK talks to Omnichannel, which a test cannot reach: this records what the
// widget hands it. Like the real SDK it asks the registered token provider on every call that
// goes to Omnichannel, so `sent` lists the token each call would have carried.
function recordingChatSDK() {
  let provider = null;
  const sent = [];
  const call = (name) => async () => {
    const token = provider ? await provider() : null;
    sent.push({ call: name, token });
    return {};
  };
  return {
    chatSDKConfig: {},
    sent,
    setAuthTokenProvider(p) { provider = p; },
    initialize: call("initialize"),
    startChat: call("startChat"),
    endChat: call("endChat"),
    getConversationDetails: call("getConversationDetails"),
    sendMessage: call("sendMessage"),
  };
}

// One widget instance: the facade over a recording chat SDK, with the admin-configured client
// function `clientFunction`. Returns { facade, chatSDK, calls, errors }.
function widget(clientFunction) {
  const calls = [];
  const errors = [];
  const chatSDK = recordingChatSDK();
  const chatConfig = { LiveChatConfigAuthSettings: { msdyn_javascriptclientfunction: clientFunction } };
  const getAuthToken = makeGetAuthToken(calls);
  const facade = new FacadeChatSDK({ chatSDK, chatConfig, getAuthToken, isAuthenticated: true }, false);
  return { facade, chatSDK, calls, errors, handleAuthentication: () => handleAuthentication(chatSDK, chatConfig, getAuthToken) };
}

// The widget initialises its broadcast channel before anything else; the facade's telemetry
// posts to it and throws without it.
BroadcastServiceInitialize("chat-auth-tests");
const widgetErrors = [];
BroadcastService.getMessageByEventName("OnWidgetError").subscribe((m) => widgetErrors.push(m.payload));

window.msWidget = { widget, widgetErrors };
