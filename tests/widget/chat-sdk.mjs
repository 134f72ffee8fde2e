// Microsoft's headless Omnichannel Chat SDK (@microsoft/omnichannel-chat-sdk), unchanged, exposed
// on window.msChatSDK for tests/tests/browser.rs. Its own bundle (ms-chat-sdk.js), apart from the
// widget's: a page under test loads only the Microsoft code its test is about.
import { OmnichannelChatSDK } from "./node_modules/@microsoft/omnichannel-chat-sdk/lib/index.js";

window.msChatSDK = { OmnichannelChatSDK };
